"""Sunbeam pipeline errors: each carries a message written for the person reading the run log."""


class SunbeamPipelineError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class ConfigError(SunbeamPipelineError):
    """The configuration file, the environment or the flow parameters are not usable."""


class TelemetryNotFoundError(SunbeamPipelineError):
    """The telemetry source holds nothing for an event."""


class TelemetryFormatError(SunbeamPipelineError):
    """Telemetry exists but cannot be read (bad header, bad numbers, no time column)."""


class MissingChannelError(SunbeamPipelineError):
    """A stage needs a telemetry channel or an upstream series the event does not have."""


class StorageError(SunbeamPipelineError):
    """MongoDB refused or could not be reached while writing results."""


class StagesFailedError(SunbeamPipelineError):
    """Raised at the end of a flow run in which at least one stage failed."""
