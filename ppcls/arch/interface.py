"""The interface every registered network implements (``tests/arch/test_models.py`` enforces it).

The rest of the project relies on these names and on nothing else about a network:
freezing and the optimizer's head groups read ``head_names``, the weights loader re-initialises
the classifier (``head_names[-1]``) when only the class count differs, fine-tuning calls
``reset_classifier``. The split mirrors timm's: ``forward_features`` gives the last feature map,
``forward_head`` pools it and classifies.
"""

from __future__ import annotations

from typing import ClassVar

import paddle
import paddle.nn as nn

from ppcls.utils.errors import ConfigError, summarize


class ClassificationNet(nn.Layer):
    """Base of every network class: a feature extractor followed by a classification head.

    A subclass sets ``head_names`` (sublayer names of the head, the classifier last; freezing
    the backbone keeps them trainable), ``num_features`` (channels of ``forward_features``'
    output) and ``class_num``, and implements ``forward_features`` and ``forward_head``. A
    classifier other than ``nn.Linear`` needs its own :meth:`new_classifier`.
    """

    head_names: ClassVar[tuple[str, ...]] = ()
    num_features: int
    class_num: int

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        """The last feature map, ``[N, num_features, H', W']``."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward_features")

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        """Logits ``[N, class_num]`` from the output of :meth:`forward_features`."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward_head")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.forward_head(self.forward_features(x))

    @property
    def classifier_name(self) -> str:
        """Sublayer name of the final classifier (the last of ``head_names``)."""
        if not self.head_names:
            raise NotImplementedError(f"{type(self).__name__} must declare head_names")
        return self.head_names[-1]

    def get_classifier(self) -> nn.Layer:
        """The final classifier layer."""
        return getattr(self, self.classifier_name)

    def new_classifier(self, class_num: int) -> nn.Layer:
        """A freshly initialised classifier for ``class_num`` classes, fed as the current one is."""
        old = self.get_classifier()
        if not isinstance(old, nn.Linear):
            raise NotImplementedError(
                f"{type(self).__name__}'s classifier {self.classifier_name} is a {type(old).__name__}, not a "
                "Linear layer: the class must implement new_classifier"
            )
        return nn.Linear(old.weight.shape[0], class_num)

    def reset_classifier(self, class_num: int) -> None:
        """Replace the classifier by a fresh one for ``class_num`` classes (the state-dict keys stay the same)."""
        if isinstance(class_num, bool) or not isinstance(class_num, int) or class_num < 1:
            raise ConfigError(f"class_num must be a positive integer, got {summarize(class_num)}")
        setattr(self, self.classifier_name, self.new_classifier(class_num))
        self.class_num = class_num


__all__ = ["ClassificationNet"]
