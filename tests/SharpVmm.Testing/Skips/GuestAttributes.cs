namespace SharpVmm.Testing;

/// <summary>A fact that boots the guest kernel and initramfs guest/setup.sh prepares.</summary>
public sealed class LinuxGuestFactAttribute : FactAttribute
{
    public LinuxGuestFactAttribute()
    {
        if (HostFeatures.Missing(Need.LinuxGuest) is { } why) Skip = why;
    }
}

/// <summary>The theory form of <see cref="LinuxGuestFactAttribute"/>.</summary>
public sealed class LinuxGuestTheoryAttribute : TheoryAttribute
{
    public LinuxGuestTheoryAttribute()
    {
        if (HostFeatures.Missing(Need.LinuxGuest) is { } why) Skip = why;
    }
}

/// <summary>A fact that drives SharpVmm through a real libvirtd (<see cref="Need.Libvirt"/>).</summary>
public sealed class LibvirtFactAttribute : FactAttribute
{
    public LibvirtFactAttribute()
    {
        if (HostFeatures.Missing(Need.Libvirt) is { } why) Skip = why;
    }
}
