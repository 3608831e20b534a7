"""neutron-server's API for the nova.cells lab (no agents, no service plugins).

Imported by wsgi-serve.py (PYTHONPATH=/usr/local/libexec/nova-cells). With ``service_plugins``
empty, Neutron 29's first ``GET /v2.0/ports`` of a fresh process fails with "type object 'Port'
has no attribute 'port_forwardings'" until some other query has configured the SQLAlchemy
mappers: import every model (as neutron-db-manage does) and configure the mappers first.
"""

from neutron.db.migration.models import head  # noqa: F401  pylint: disable=unused-import
from sqlalchemy import orm

orm.configure_mappers()

from neutron.wsgi.api import application  # noqa: F401  pylint: disable=wrong-import-position,unused-import
