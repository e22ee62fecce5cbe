namespace SharpVmm.Devices.Virtio;

/// <summary>One validated buffer of a descriptor chain: [Address, Address+Length) lies inside one guest RAM region.</summary>
public readonly record struct VirtqDescriptor(ulong Address, uint Length, bool Writable);
