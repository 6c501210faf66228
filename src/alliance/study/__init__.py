"""Study data: the protocol, the tidy data contract, importers and exporters."""
