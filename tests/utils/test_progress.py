import logging

from ppcls.utils import progress as progress_mod


def test_plain_log_lines_when_not_a_terminal(monkeypatch, caplog):
    monkeypatch.setattr(progress_mod.sys.stderr, "isatty", lambda: False, raising=False)
    with caplog.at_level(logging.INFO, logger="ppcls.utils.progress"):
        with progress_mod.progress(total=3, desc="eval", unit="batch") as bar:
            bar.every = 0.0
            bar.update(1)
            bar.update(2)
    assert "eval: 3/3 batch" in caplog.text


def test_tqdm_bar_on_a_terminal(monkeypatch):
    monkeypatch.setattr(progress_mod.sys.stderr, "isatty", lambda: True, raising=False)
    with progress_mod.progress(total=2, desc="infer", unit="img") as bar:
        bar.update(2)
        assert type(bar).__name__ == "tqdm" and bar.n == 2
