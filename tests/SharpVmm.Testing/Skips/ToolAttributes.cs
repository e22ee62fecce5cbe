namespace SharpVmm.Testing;

/// <summary>A fact that uses qemu-img/qemu-io as the reference oracle.</summary>
public sealed class QemuFactAttribute : FactAttribute
{
    public QemuFactAttribute()
    {
        if (HostFeatures.Missing(Need.QemuUtils) is { } why) Skip = why;
    }
}

/// <summary>The theory form of <see cref="QemuFactAttribute"/>.</summary>
public sealed class QemuTheoryAttribute : TheoryAttribute
{
    public QemuTheoryAttribute()
    {
        if (HostFeatures.Missing(Need.QemuUtils) is { } why) Skip = why;
    }
}

/// <summary>A fact that needs one more host program on PATH, named with the Debian package that brings it.</summary>
public sealed class ToolFactAttribute : FactAttribute
{
    public ToolFactAttribute(string tool, string package)
    {
        if (!HostTools.Exists(tool)) Skip = $"needs {tool}: not installed (Debian package {package})";
    }
}
