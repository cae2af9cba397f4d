"""seednews: turn news seed files into a searchable, faceted OpenSearch index.

Stages, one module each, with one named type at each boundary (see ``pipeline.types``)::

    discover  -> SeedFile       (pipeline.discover; pipeline.plan compares it with the ledger)
    parse     -> SeedRecord     (pipeline.parse)       | SeedOutcome (quarantined)
    normalize -> Document       (pipeline.normalize)
    images    -> Document + image verdicts (pipeline.images; netsafe, imagecache, imagetypes)
    index     -> ItemResult     (pipeline.index)
    outcomes  -> SeedOutcome    (pipeline.outcomes: bulk results -> outcomes -> ledger + report)
    ledger    -> LedgerEntry    (pipeline.ledger: what became of every seed file)
    report    -> RunReport      (pipeline.report)

``pipeline.flow`` strings them together; ``devtools.localnode`` runs a local OpenSearch for dev and tests.

This package never imports Airflow; ``dags/`` wires it into Airflow, ``python -m pipeline`` runs it alone.
"""

__version__ = "0.1.0"
