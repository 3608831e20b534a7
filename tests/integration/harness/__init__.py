"""Real-Nova test lab for the nova.cells integration tests; see tests/integration/README.md."""

from .ansible_runner import AnsibleRunner, ModuleResult, PlaybookResult
from .figures import record_figure
from .lab import NOVA_DB_PASSWORD, NOVA_DB_USER, RABBIT_PASSWORD, RABBIT_USER, Cell, Lab
from .nova import CommandResult, NovaService
from .processes import LabError

__all__ = [
    "NOVA_DB_PASSWORD",
    "NOVA_DB_USER",
    "RABBIT_PASSWORD",
    "RABBIT_USER",
    "AnsibleRunner",
    "Cell",
    "CommandResult",
    "Lab",
    "LabError",
    "ModuleResult",
    "NovaService",
    "PlaybookResult",
    "record_figure",
]
