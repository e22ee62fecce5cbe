namespace SharpVmm.Boot.Initramfs;

/// <summary>One loadable kernel module found under a lib/modules/&lt;version&gt; tree.</summary>
/// <param name="Name">Canonical module name ('_' for '-'), as the kernel and lsmod spell it.</param>
/// <param name="RelativePath">Path below the modules dir with '/' separators, e.g. kernel/drivers/virtio/virtio.ko.</param>
/// <param name="FullPath">Host path of the .ko file.</param>
/// <param name="Depends">Canonical names of the modules that must be loaded first.</param>
public sealed record KernelModule(string Name, string RelativePath, string FullPath, IReadOnlyList<string> Depends);
