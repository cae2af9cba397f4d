"""seednews: turn news seed files into a searchable, faceted OpenSearch index.

The path of one seed, one named type at each boundary (see ``pipeline.types``)::

    discover  -> SeedFile       (pipeline.sources: a folder or s3; pipeline.run.plan compares it with the ledger)
    parse     -> SeedRecord     (pipeline.stages.parse)       | SeedOutcome (quarantined)
    normalize -> Document       (pipeline.stages.normalize)
    images    -> Document + image verdicts (pipeline.stages.images; safety.netsafe, stores.imagecache)
    index     -> ItemResult     (pipeline.stores.bulk)
    outcomes  -> SeedOutcome    (pipeline.run.outcomes: bulk results -> outcomes -> ledger + report)
    ledger    -> LedgerEntry    (pipeline.stores.ledger: what became of every seed file)
    report    -> RunReport      (pipeline.run.report)

``pipeline.run.flow`` strings them together (the floors and their rule: ``python -m devtools.imports``);
``devtools.localnode`` runs a local OpenSearch for dev and tests.

This package never imports Airflow; ``dags/`` wires it into Airflow, ``python -m pipeline`` runs it alone.
"""

__version__ = "0.1.0"
