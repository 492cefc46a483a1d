"""Model catalog and provider adapters. Depends on nothing else of ours."""
