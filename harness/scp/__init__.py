"""The reference Storage SCP: service class, streaming storage, behaviour profiles, server."""

from harness.scp.profile import FAULTS, Profile, ProfileError, StatusRule
from harness.scp.server import StorageSCP, StoreRecord
from harness.scp.service import (
    CStoreRequest,
    CStoreResponse,
    PresentationContext,
    StorageServiceClass,
    StoreEvent,
)

__all__ = [
    "FAULTS",
    "CStoreRequest",
    "CStoreResponse",
    "PresentationContext",
    "Profile",
    "ProfileError",
    "StatusRule",
    "StorageSCP",
    "StorageServiceClass",
    "StoreEvent",
    "StoreRecord",
]
