"""The policy file (schema, loading, validation) and the decision logic. Depends on providers only."""
