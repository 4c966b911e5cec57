"""Roll a new Azure Managed Application definition version out to every customer instance safely."""

__version__ = "0.1.0"
