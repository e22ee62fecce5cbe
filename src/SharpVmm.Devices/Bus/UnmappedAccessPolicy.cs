namespace SharpVmm.Devices.Bus;

/// <summary>What a guest access to an address no device claims does to the VM.</summary>
public enum UnmappedAccessPolicy
{
    /// <summary>As on a PC: reads see all ones, writes vanish, and the access is logged. The guest keeps running.</summary>
    Ignore,
    /// <summary>The VM stops with an error naming the address: for test guests that must never stray.</summary>
    Stop,
}
