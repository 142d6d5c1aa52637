"""Type stub of adtarget.reference: the names below load on first use (``lazy_loader``, SPEC 1)."""

from ._breakdowns import AGE_BANDS as AGE_BANDS
from ._breakdowns import BREAKDOWN_DIMENSIONS as BREAKDOWN_DIMENSIONS
from ._breakdowns import BreakdownDimension as BreakdownDimension
from ._breakdowns import age_band_codes as age_band_codes
from ._sensitivity import PROFILE_NAMES as PROFILE_NAMES
from ._sensitivity import SafeTaxonomy as SafeTaxonomy
from ._sensitivity import SensitivityProfile as SensitivityProfile
from ._sensitivity import age_restricted_mask as age_restricted_mask
from ._services import Service as Service
from ._services import ServiceRegistry as ServiceRegistry
from ._taxonomy import Taxonomy as Taxonomy
from ._taxonomy_files import IAB_NON_INTEREST_ROOTS as IAB_NON_INTEREST_ROOTS

__all__ = ["AGE_BANDS", "BREAKDOWN_DIMENSIONS", "IAB_NON_INTEREST_ROOTS", "PROFILE_NAMES", "BreakdownDimension",
           "SafeTaxonomy", "SensitivityProfile", "Service", "ServiceRegistry", "Taxonomy", "age_band_codes", "age_restricted_mask"]
