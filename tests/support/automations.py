"""An automation rule saved as the admin's form saves it (validated by the catalog)."""

from __future__ import annotations

from extensions import db
from models import AutomationRule
from services.automations import catalog


def rule(inbox, name="VIP customers", conditions=None, actions=None, **options) -> AutomationRule:
    clean = catalog.validate_rule(
        inbox,
        name,
        options.pop("match", "all"),
        conditions or [{"field": "kind", "op": "is", "value": "new"}],
        actions or [{"type": "add_labels", "labels": ["vip"]}],
    )
    found = AutomationRule(
        inbox_id=inbox.id if inbox is not None else None,
        name=clean.name,
        match=clean.match,
        conditions=clean.conditions,
        actions=clean.actions,
        **options,
    )
    db.session.add(found)
    db.session.commit()
    return found
