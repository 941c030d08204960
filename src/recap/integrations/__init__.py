"""Integrations of recap's pieces into other training libraries (``recap.integrations.trl``)."""
