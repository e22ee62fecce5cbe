using System.Text;

namespace SharpVmm.Boot.Tests.Linux;

/// <summary>
/// A minimal uncompressed newc cpio archive for the QEMU boot test: just enough (/dev/console, busybox, an /init
/// script) for the kernel to run one command. The project's real initramfs builder lives elsewhere; this one only
/// has to satisfy the kernel's unpacker (Documentation/driver-api/early-userspace/buffer-format.rst).
/// </summary>
internal sealed class TinyInitramfs
{
    private readonly MemoryStream _out = new();
    private int _ino = 1;

    public TinyInitramfs Directory(string name) => Add(name, 0x41ED, [], 0, 0);               // drwxr-xr-x
    public TinyInitramfs File(string name, byte[] data, bool executable) => Add(name, executable ? 0x81ED : 0x81A4, data, 0, 0);
    public TinyInitramfs CharDevice(string name, int major, int minor) => Add(name, 0x2180, [], major, minor); // crw-------

    public byte[] Finish()
    {
        Add("TRAILER!!!", 0, [], 0, 0);
        return _out.ToArray();
    }

    private TinyInitramfs Add(string name, int mode, byte[] data, int rdevMajor, int rdevMinor)
    {
        var nameBytes = Encoding.ASCII.GetBytes(name + "\0");
        var header = $"070701{_ino++:X8}{mode:X8}{0:X8}{0:X8}{1:X8}{0:X8}{data.Length:X8}{0:X8}{0:X8}{rdevMajor:X8}{rdevMinor:X8}{nameBytes.Length:X8}{0:X8}";
        _out.Write(Encoding.ASCII.GetBytes(header));
        _out.Write(nameBytes);
        Pad();
        _out.Write(data);
        Pad();
        return this;
    }

    private void Pad()
    {
        while (_out.Length % 4 != 0) _out.WriteByte(0);
    }
}
