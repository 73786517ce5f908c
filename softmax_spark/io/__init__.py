"""Storage and formats: URIs on any Hadoop filesystem, atomic publish, the native / MLlib model formats, checkpoints."""
