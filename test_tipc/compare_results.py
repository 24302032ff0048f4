"""Compare classification results of two runs within a tolerance (a TIPC check).

    python test_tipc/compare_results.py --gt GT --pred PRED [--atol 0.001]
    python test_tipc/compare_results.py --gt EXPECTED.json --pred PRED --train_log TRAIN_LOG --eval_log EVAL_LOG
    python test_tipc/compare_results.py --pred PRED [--train_log L --eval_log L] --save_expected X.json --model M --mode MODE

GT and PRED may each be:

* a stored expected-results file (``.json``: {"model", "mode", "results": [...]}, see test_tipc/results/),
* the predictor's ``Global.save_results`` file (``.jsonl``: one result dict per line),
* a log: tools/infer.py's output (lines holding a Python list of result dicts) or the deploy
  predictor's printed lines ``NAME:\\tclass id(s): [...], score(s): [...], label_name(s): [...]``.

Images are matched by file name (without folders). Per image the top-k scores must agree within
``atol``; class ids must agree except where scores tie within ``atol`` (their order is then
arbitrary), and a class found in only one top-k list must be at that list's cut-off (its score
within ``atol`` of the other list's lowest score).

Stored expected results (test_tipc/results/) also hold the training's per-epoch average losses
(``[Train][Epoch N/M][Avg] ... loss: X`` lines of the training log) and the evaluation's metrics
(``[Eval][Epoch 0][Avg] CELoss: X, loss: X, top1: X, top5: X``), compared within ``metric_atol``:
a lite model trained for a few steps often scores every image alike (BatchNorm statistics are still
near their start values), and the losses are what changes when the training computation changes.

Exit code 0 when everything matches, 1 on a mismatch, 2 when a file is missing or cannot be read.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import tempfile

_TRAIN_AVG = re.compile(r"\[Train\]\[Epoch (\d+)/\d+\]\[Avg\].*?\bloss: ([-+0-9.eE]+|nan|inf)")
_EVAL_AVG = re.compile(r"\[Eval\]\[Epoch \d+\]\[Avg\](.*)")
_METRIC = re.compile(r"([A-Za-z0-9_]+): ([-+0-9.eE]+)")
_PRED_LINE = re.compile(
    r"^(?P<name>[^\t]+):\tclass id\(s\): (?P<ids>\[[^\]]*\]), score\(s\): (?P<scores>\[[^\]]*\])"
)


class ResultsError(ValueError):
    """A results file is missing or cannot be read; the message names it."""


def _item(d: dict, where: str) -> tuple[str, list[int], list[float]]:
    try:
        name = os.path.basename(str(d["file_name"]))
        ids = [int(i) for i in d["class_ids"]]
        scores = [float(s) for s in d["scores"]]
    except (KeyError, TypeError, ValueError) as e:
        raise ResultsError(f"{where}: a result without file_name / class_ids / scores ({e})") from None
    if len(ids) != len(scores):
        raise ResultsError(f"{where}: {name}: {len(ids)} class ids but {len(scores)} scores")
    return name, ids, scores


def load_results(path: str) -> dict[str, tuple[list[int], list[float]]]:
    """{image file name: (class ids, scores)} from any of the supported files."""
    if not os.path.isfile(path):
        raise ResultsError(f"results file not found: {path}")
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    items: list[tuple[str, list[int], list[float]]] = []
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ResultsError(f"{path}: not valid JSON: {e}") from None
        results = data.get("results") if isinstance(data, dict) else data
        if not isinstance(results, list):
            raise ResultsError(f"{path}: expected {{'results': [...]}} or a list of results")
        items = [_item(d, path) for d in results]
    elif path.endswith(".jsonl"):
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(_item(json.loads(line), f"{path}:{lineno}"))
                except json.JSONDecodeError as e:
                    raise ResultsError(f"{path}:{lineno}: not valid JSON: {e}") from None
    else:
        for lineno, line in enumerate(text.splitlines(), 1):
            s = line.strip()
            if s.startswith("[{") and s.endswith("}]"):
                try:
                    batch = ast.literal_eval(s)
                except (ValueError, SyntaxError) as e:
                    raise ResultsError(f"{path}:{lineno}: cannot read the result list: {e}") from None
                items.extend(_item(d, f"{path}:{lineno}") for d in batch)
                continue
            m = _PRED_LINE.match(line)
            if m:
                ids = ast.literal_eval(m.group("ids"))
                scores = ast.literal_eval(m.group("scores"))
                items.append(_item({"file_name": m.group("name"), "class_ids": ids, "scores": scores},
                                   f"{path}:{lineno}"))
    if not items:
        raise ResultsError(f"{path}: no results found")
    out: dict[str, tuple[list[int], list[float]]] = {}
    for name, ids, scores in items:
        if name in out:
            raise ResultsError(f"{path}: image {name} appears twice")
        out[name] = (ids, scores)
    return out


def read_train_losses(path: str) -> dict[str, float]:
    """{epoch: average training loss} from a training log (the last value of each epoch)."""
    if not os.path.isfile(path):
        raise ResultsError(f"training log not found: {path}")
    out: dict[str, float] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _TRAIN_AVG.search(line)
            if m:
                out[m.group(1)] = float(m.group(2))
    if not out:
        raise ResultsError(f"{path}: no '[Train][Epoch N/M][Avg] ... loss: X' lines")
    return out


def read_eval_metrics(path: str) -> dict[str, float]:
    """The metrics of the last ``[Eval][Epoch N][Avg]`` line of an evaluation log."""
    if not os.path.isfile(path):
        raise ResultsError(f"evaluation log not found: {path}")
    found = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _EVAL_AVG.search(line)
            if m:
                found = m.group(1)
    if found is None:
        raise ResultsError(f"{path}: no '[Eval][Epoch N][Avg] ...' line")
    return {k: float(v) for k, v in _METRIC.findall(found)}


def compare_metrics(name: str, gt: dict[str, float], pred: dict[str, float], atol: float) -> list[str]:
    problems = []
    for key in sorted(set(gt) | set(pred)):
        if key not in pred:
            problems.append(f"{name} {key}: expected {gt[key]}, missing")
        elif key not in gt:
            problems.append(f"{name} {key}: {pred[key]} is not in the expected results")
        elif not abs(gt[key] - pred[key]) <= atol:
            problems.append(f"{name} {key}: {pred[key]} vs expected {gt[key]}")
    return problems


def compare_one(gt: tuple[list[int], list[float]], pred: tuple[list[int], list[float]], atol: float) -> list[str]:
    """Differences between two top-k results of one image (empty when they agree)."""
    (g_ids, g_scores), (p_ids, p_scores) = gt, pred
    problems: list[str] = []
    k = min(len(g_ids), len(p_ids))
    g_ids, g_scores, p_ids, p_scores = g_ids[:k], g_scores[:k], p_ids[:k], p_scores[:k]
    g_map, p_map = dict(zip(g_ids, g_scores, strict=True)), dict(zip(p_ids, p_scores, strict=True))
    for i in range(k):
        if abs(g_scores[i] - p_scores[i]) > atol:
            problems.append(f"rank {i + 1}: score {p_scores[i]} vs expected {g_scores[i]}")
    for cid in set(g_map) & set(p_map):
        if abs(g_map[cid] - p_map[cid]) > atol:
            problems.append(f"class {cid}: score {p_map[cid]} vs expected {g_map[cid]}")
    g_floor, p_floor = (min(g_scores) if g_scores else 0.0), (min(p_scores) if p_scores else 0.0)
    for cid in set(g_map) - set(p_map):
        if abs(g_map[cid] - p_floor) > atol:
            problems.append(f"class {cid} (score {g_map[cid]}) is missing from the top-{k}")
    for cid in set(p_map) - set(g_map):
        if abs(p_map[cid] - g_floor) > atol:
            problems.append(f"class {cid} (score {p_map[cid]}) is not in the expected top-{k}")
    if k and g_ids[0] != p_ids[0] and abs(p_scores[0] - p_map.get(g_ids[0], p_floor)) > atol:
        problems.append(f"top-1 class {p_ids[0]} vs expected {g_ids[0]}")
    return sorted(set(problems))


def compare(gt_path: str, pred_path: str, atol: float) -> list[str]:
    gt, pred = load_results(gt_path), load_results(pred_path)
    problems = []
    for name in sorted(set(gt) - set(pred)):
        problems.append(f"{name}: in {gt_path} but not in {pred_path}")
    for name in sorted(set(pred) - set(gt)):
        problems.append(f"{name}: in {pred_path} but not in {gt_path}")
    for name in sorted(set(gt) & set(pred)):
        problems.extend(f"{name}: {p}" for p in compare_one(gt[name], pred[name], atol))
    return problems


def compare_logs(expected_path: str, train_log: str | None, eval_log: str | None, atol: float) -> list[str]:
    """Differences between the stored train losses / eval metrics and those of the given logs."""
    with open(expected_path, encoding="utf-8") as f:
        data = json.load(f)
    problems = []
    if "train_loss" in data:
        if not train_log:
            raise ResultsError(f"{expected_path} holds training losses: pass --train_log")
        problems += compare_metrics("train loss of epoch", data["train_loss"], read_train_losses(train_log), atol)
    if "eval" in data:
        if not eval_log:
            raise ResultsError(f"{expected_path} holds evaluation metrics: pass --eval_log")
        problems += compare_metrics("eval", data["eval"], read_eval_metrics(eval_log), atol)
    return problems


def dump_expected(data: dict) -> str:
    """JSON with one result per line, so that a diff of a regenerated file shows which image changed."""
    head = {k: v for k, v in data.items() if k != "results"}
    lines = [json.dumps(head, indent=1)[:-2] + ",", ' "results": [']
    results = data.get("results", [])
    lines += [f"  {json.dumps(r)}{',' if i < len(results) - 1 else ''}" for i, r in enumerate(results)]
    lines += [" ]", "}"]
    return "\n".join(lines) + "\n"


def save_expected(pred_path: str, out_path: str, model: str, mode: str, train_log: str | None = None,
                  eval_log: str | None = None) -> int:
    results = load_results(pred_path)
    data: dict = {
        "model": model,
        "mode": mode,
        "note": "norm_train, gpus -1, fp32 variant: per-epoch training losses, tools/eval.py metrics and "
                "tools/infer.py results; written with TIPC_SAVE_RESULTS=1 bash "
                "test_tipc/test_train_inference_python.sh CONFIG MODE",
    }
    if train_log:
        data["train_loss"] = read_train_losses(train_log)
    if eval_log:
        data["eval"] = read_eval_metrics(eval_log)
    data["results"] = [{"file_name": n, "class_ids": ids, "scores": sc} for n, (ids, sc) in sorted(results.items())]
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".expected.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dump_expected(data))
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(f"wrote {len(results)} expected results to {out_path}")
    return len(results)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", help="the expected results")
    p.add_argument("--pred", required=True, help="the results to check")
    p.add_argument("--atol", type=float, default=1e-3, help="largest allowed score difference (default %(default)s)")
    p.add_argument("--train_log", help="a training log: its per-epoch losses are compared / stored")
    p.add_argument("--eval_log", help="an evaluation log: its metrics are compared / stored")
    p.add_argument("--metric_atol", type=float, default=2e-3,
                   help="largest allowed difference of losses and metrics (default %(default)s)")
    p.add_argument("--save_expected", help="write PRED (and the logs) as the expected results to this .json file")
    p.add_argument("--model", default="", help="with --save_expected: the model name recorded")
    p.add_argument("--mode", default="", help="with --save_expected: the TIPC mode recorded")
    args = p.parse_args(argv)
    try:
        if args.save_expected:
            save_expected(args.pred, args.save_expected, args.model, args.mode, args.train_log, args.eval_log)
            return 0
        if not args.gt:
            p.error("--gt is required unless --save_expected is given")
        problems = compare(args.gt, args.pred, args.atol)
        if args.gt.endswith(".json"):
            problems += compare_logs(args.gt, args.train_log, args.eval_log, args.metric_atol)
        elif args.train_log or args.eval_log:
            p.error("--train_log / --eval_log need --gt to be a stored .json file")
    except ResultsError as e:
        print(f"compare_results.py: error: {e}", file=sys.stderr)
        return 2
    n = len(load_results(args.gt))
    if problems:
        print(f"MISMATCH: {args.pred} differs from {args.gt} (atol {args.atol}):")
        for line in problems:
            print(f"  {line}")
        return 1
    print(f"OK: {n} images of {args.pred} match {args.gt} (atol {args.atol})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
