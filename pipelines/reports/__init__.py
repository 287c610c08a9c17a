"""Reporting on loaded Polytomic execution history: SQL views and the report renderer."""
