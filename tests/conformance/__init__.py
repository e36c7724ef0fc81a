"""Flask's own test suites run against Ampulla through ampulla.flask_patch (``make conformance``)."""
