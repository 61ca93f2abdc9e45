"""Language models served by the offload service."""
