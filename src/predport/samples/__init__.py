"""The built-in readers' conformance samples (see predport.testing)."""
