"""seednews: turn news seed files into a searchable, faceted OpenSearch index.

Stages, one module each, with one named type at each boundary (see ``pipeline.types``)::

    discover  -> SeedFile       (pipeline.sources.folder; pipeline.run.plan compares it with the ledger)
    parse     -> SeedRecord     (pipeline.stages.parse)       | SeedOutcome (quarantined)
    normalize -> Document       (pipeline.stages.normalize)
    images    -> Document + image verdicts (pipeline.stages.images; netsafe, imagecache, imagetypes)
    index     -> ItemResult     (pipeline.stores.bulk)
    outcomes  -> SeedOutcome    (pipeline.run.outcomes: bulk results -> outcomes -> ledger + report)
    ledger    -> LedgerEntry    (pipeline.stores.ledger: what became of every seed file)
    report    -> RunReport      (pipeline.run.report)

``pipeline.run.flow`` strings them together; ``devtools.localnode`` runs a local OpenSearch for dev and tests.

This package never imports Airflow; ``dags/`` wires it into Airflow, ``python -m pipeline`` runs it alone.
"""

__version__ = "0.1.0"
