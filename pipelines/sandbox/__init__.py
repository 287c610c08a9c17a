"""A faithful, deterministic simulation of Polytomic's bulk-sync REST API.

It is the test oracle for the extractor and must never import from ``sources``.
Stdlib only at runtime.

    from pipelines.sandbox import Sandbox, SyncPlan, Fault

    with Sandbox(seed=7, syncs=3, executions=250) as sb:
        requests.get(f"{sb.base_url}/api/bulk/syncs",
                     headers={"Authorization": f"Bearer {sb.api_key}"})
"""

from .data import SandboxConflict
from .faults import Fault
from .options import Options
from .plans import SyncPlan
from .requestlog import RequestRecord
from .sandbox import Sandbox

__all__ = ["Fault", "Options", "RequestRecord", "Sandbox", "SandboxConflict", "SyncPlan"]
