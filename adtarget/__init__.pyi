"""Type stub of adtarget: the top-level names below load on first use (``lazy_loader``, SPEC 1)."""

from . import budget as budget
from . import consent as consent
from . import engine as engine
from . import events as events
from . import exceptions as exceptions
from . import gate as gate
from . import profiles as profiles
from . import reference as reference
from . import reports as reports
from . import rights as rights
from . import segments as segments
from . import synth as synth
from . import testing as testing
from ._core._buffers import buffer_cache_limit as buffer_cache_limit
from ._core._buffers import buffer_stats as buffer_stats
from ._core._buffers import release_buffers as release_buffers
from .budget import BudgetLedger as BudgetLedger
from .budget import InMemoryAccountant as InMemoryAccountant
from .budget import PrivacyBudget as PrivacyBudget
from .consent import ConsentLedger as ConsentLedger
from .engine import LocalEngine as LocalEngine
from .engine import RunResult as RunResult
from .engine import RunSettings as RunSettings
from .engine import SparkEngine as SparkEngine
from .engine import run as run
from .events import EventBatch as EventBatch
from .events import Pseudonymizer as Pseudonymizer
from .events import ingest as ingest
from .exceptions import AdtargetError as AdtargetError
from .exceptions import PrivacyLeakWarning as PrivacyLeakWarning
from .gate import EligibilityPolicy as EligibilityPolicy
from .gate import EligibleEvents as EligibleEvents
from .gate import apply_gate as apply_gate
from .profiles import InterestProfiler as InterestProfiler
from .profiles import build_profiles as build_profiles
from .reference import SafeTaxonomy as SafeTaxonomy
from .reference import SensitivityProfile as SensitivityProfile
from .reference import ServiceRegistry as ServiceRegistry
from .reference import Taxonomy as Taxonomy
from .reports import ReleaseSpec as ReleaseSpec
from .reports import SegmentReport as SegmentReport
from .reports import accuracy as accuracy
from .reports import epsilon_for as epsilon_for
from .reports import release as release
from .rights import access_export as access_export
from .rights import forget_everywhere as forget_everywhere
from .segments import AllOf as AllOf
from .segments import AnyOf as AnyOf
from .segments import DPKMeansSegmenter as DPKMeansSegmenter
from .segments import SegmentAssignments as SegmentAssignments
from .segments import SegmentCatalog as SegmentCatalog
from .segments import TopicSegment as TopicSegment

__version__: str

__all__ = [
    "AdtargetError", "AllOf", "AnyOf", "BudgetLedger", "ConsentLedger", "DPKMeansSegmenter", "EligibilityPolicy",
    "EligibleEvents", "EventBatch", "InMemoryAccountant", "InterestProfiler", "LocalEngine", "PrivacyBudget",
    "PrivacyLeakWarning", "Pseudonymizer", "ReleaseSpec", "RunResult", "RunSettings", "SafeTaxonomy",
    "SegmentAssignments", "SegmentCatalog", "SegmentReport", "SensitivityProfile", "ServiceRegistry",
    "SparkEngine", "Taxonomy", "TopicSegment", "__version__", "access_export", "accuracy", "apply_gate", "budget", "buffer_cache_limit", "buffer_stats",
    "build_profiles", "consent", "engine", "epsilon_for", "events", "exceptions", "forget_everywhere", "gate", "ingest",
    "profiles", "reference", "release", "release_buffers", "reports", "rights", "run", "segments", "synth", "testing",
]
