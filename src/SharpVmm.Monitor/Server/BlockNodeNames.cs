namespace SharpVmm.Monitor.Server;

/// <summary>
/// The names a disk goes by in QEMU's block queries: <see cref="Device"/> the drive's BlockBackend name ("" for a
/// disk given with -blockdev and -device), <see cref="Qdev"/> the QOM path of its device's backend, and
/// <see cref="Node"/> the node-name of its top (format) node.
/// </summary>
public sealed record BlockNodeNames(string Device, string Qdev, string Node);
