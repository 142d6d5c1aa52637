"""Reference data every stage reads and none derives from events: interest taxonomies, sensitivity profiles
(which categories reveal special categories of data, promise P5) and the service registry (promise P9).

Bundled files are under ``adtarget/data/taxonomy/``; user taxonomies load from TSV, CSV or JSON.
"""

from adtarget.reference._sensitivity import PROFILE_NAMES, SafeTaxonomy, SensitivityProfile
from adtarget.reference._services import Service, ServiceRegistry
from adtarget.reference._taxonomy import Taxonomy
from adtarget.reference._taxonomy_files import IAB_NON_INTEREST_ROOTS

__all__ = ["IAB_NON_INTEREST_ROOTS", "PROFILE_NAMES", "SafeTaxonomy", "SensitivityProfile", "Service",
           "ServiceRegistry", "Taxonomy"]
