"""Type stub of adtarget.synth: the names below load on first use (``lazy_loader``, SPEC 1)."""

from ._generate import generate as generate
from ._io import write_consent as write_consent
from ._io import write_events as write_events
from ._model import GroundTruth as GroundTruth
from ._model import SyntheticConfig as SyntheticConfig
from ._model import SyntheticData as SyntheticData
from ._world import SERVICES as SERVICES

__all__ = ["SERVICES", "GroundTruth", "SyntheticConfig", "SyntheticData", "generate", "write_consent", "write_events"]
