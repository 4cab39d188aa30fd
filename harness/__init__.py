"""harness: agents propose code edits to ML training recipes; sandboxed trials, evaluator-owned scores, an auditable git lineage."""

__version__ = "0.1.0"
