"""Model families; importing this package registers every builder."""

from vitrepro.models import bit, vit  # noqa: F401  (registration side effect)
from vitrepro.models.build import build_model
from vitrepro.models.heads import Classifier
from vitrepro.models.registry import available_archs, get_builder

__all__ = ["Classifier", "available_archs", "build_model", "get_builder"]
