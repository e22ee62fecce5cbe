using SharpVmm.Core;

namespace SharpVmm.Cli.Run;

/// <summary>A <c>--config</c> file that cannot be used: unreadable, not JSON, an unknown key, a value of the wrong type or a value the option refuses.</summary>
public sealed class ConfigFileException(string message) : ConfigurationException(message);
