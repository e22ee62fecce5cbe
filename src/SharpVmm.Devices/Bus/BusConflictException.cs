using SharpVmm.Core;

namespace SharpVmm.Devices.Bus;

/// <summary>Two devices asked for overlapping windows: a machine-building mistake, reported before the guest runs.</summary>
public sealed class BusConflictException(string message) : ConfigurationException(message);
