"""Forecasts move the data version, so that kept `/forecasts/*` answers follow them: a
run started, finished, failed or pruned, its products and predictions written. Not a
run's progress or snapshot, written while it computes (twice a second), which would drop
every kept answer of the service: on `forecast_runs` the bump is per row, for rows
inserted or deleted and for updates that change `status` (a statement-level one would
also fire for readers' sweep of dead runs, an UPDATE of `status` that changes nothing).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:30:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = "bump_data_version"  # migration 0005's
# (trigger, table, when and how it fires)
TRIGGERS = (
    ("bump_data_version", "forecast_runs", "AFTER INSERT OR DELETE", "FOR EACH ROW"),
    (
        "bump_data_version_on_status",
        "forecast_runs",
        "AFTER UPDATE OF status",
        "FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)",
    ),
    ("bump_data_version_on_truncate", "forecast_runs", "AFTER TRUNCATE", "FOR EACH STATEMENT"),
    (
        "bump_data_version",
        "forecast_products",
        "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE",
        "FOR EACH STATEMENT",
    ),
    (
        "bump_data_version",
        "predicted_product_demand",
        "AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE",
        "FOR EACH STATEMENT",
    ),
)


def upgrade() -> None:
    for name, table, events, each in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {name} {events} ON {table} {each} EXECUTE FUNCTION {FUNCTION}()"
        )
        # As on every tracked table: it fires under session_replication_role = replica.
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {name}")


def downgrade() -> None:
    for name, table, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}")
