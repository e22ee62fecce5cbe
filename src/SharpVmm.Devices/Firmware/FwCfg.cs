using System.Buffers.Binary;
using System.Text;
using SharpVmm.Core.Io;
using SharpVmm.Core.Platform;

namespace SharpVmm.Devices.Firmware;

/// <summary>
/// QEMU's firmware configuration device (docs/specs/fw_cfg.rst), traditional I/O interface: a 16-bit selector at
/// port 0x510 picks an item and rewinds it; each byte read from the data port 0x511 returns the item's next byte,
/// and 0 past its end or for a key nothing was stored under. Test kernels (kvm-unit-tests style) read the CPU count and
/// RAM size here. No DMA interface (the ID item says so); guest writes to items are ignored, as in QEMU since 2.4.
/// </summary>
public sealed class FwCfg : IIoDevice
{
    public const ushort SelectorPort = PcLayout.FwCfgPort;
    /// <summary>Selector (2 bytes) then data (1 byte): 0x510-0x511.</summary>
    public const ushort WindowSize = 2;

    public const ushort KeySignature = 0x00, KeyId = 0x01, KeyUuid = 0x02, KeyRamSize = 0x03, KeyNoGraphic = 0x04,
        KeyCpuCount = 0x05, KeyMaxCpus = 0x0F, KeyCmdlineSize = 0x14, KeyCmdlineData = 0x15, KeyFileDir = 0x19;
    public const ushort FirstFileKey = 0x20;
    /// <summary>Bit 0 of the ID item: the traditional (port) interface. Bit 1 (DMA) stays clear.</summary>
    public const uint IdTraditional = 1;
    private const int FileNameMax = 56;

    private readonly object _gate = new();
    private readonly Dictionary<ushort, byte[]> _items = [];
    private readonly List<(string Name, ushort Key, int Size)> _files = [];
    private ushort _selector;
    private int _offset;

    public FwCfg()
    {
        _items[KeySignature] = "QEMU"u8.ToArray();
        _items[KeyId] = Le32(IdTraditional);
        _items[KeyFileDir] = new byte[4];
    }

    /// <summary>The items QEMU's PC machine provides that a guest without firmware may read.</summary>
    public static FwCfg ForMachine(int cpus, ulong ramBytes, string? commandLine)
    {
        var f = new FwCfg();
        f.SetItem(KeyCpuCount, Le16((ushort)cpus));
        f.SetItem(KeyMaxCpus, Le16((ushort)cpus));
        var ram = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(ram, ramBytes);
        f.SetItem(KeyRamSize, ram);
        f.SetItem(KeyNoGraphic, Le16(1));
        if (commandLine is not null)
        {
            // The size counts the terminating NUL, which the data item carries.
            byte[] text = Encoding.ASCII.GetBytes(commandLine + "\0");
            f.SetItem(KeyCmdlineSize, Le32((uint)text.Length));
            f.SetItem(KeyCmdlineData, text);
        }
        return f;
    }

    public void SetItem(ushort key, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        lock (_gate) _items[key] = data;
    }

    /// <summary>Adds a named file: stored under the next free key from 0x20 and listed in the directory (key 0x19).</summary>
    public ushort AddFile(string name, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(data);
        if (name.Length == 0 || Encoding.ASCII.GetByteCount(name) >= FileNameMax)
            throw new ArgumentException($"fw_cfg file name '{name}' must be 1 to {FileNameMax - 1} ASCII characters", nameof(name));
        lock (_gate)
        {
            foreach (var f in _files)
                if (f.Name == name) throw new ArgumentException($"fw_cfg file '{name}' already exists", nameof(name));
            ushort key = (ushort)(FirstFileKey + _files.Count);
            _items[key] = data;
            _files.Add((name, key, data.Length));
            _items[KeyFileDir] = Directory();
            return key;
        }
    }

    /// <summary>Big-endian count, then per file: size (BE32), select (BE16), reserved (16 bits), NUL-padded name.</summary>
    private byte[] Directory()
    {
        var d = new byte[4 + _files.Count * 64];
        BinaryPrimitives.WriteUInt32BigEndian(d, (uint)_files.Count);
        for (int i = 0; i < _files.Count; i++)
        {
            var e = d.AsSpan(4 + i * 64, 64);
            BinaryPrimitives.WriteUInt32BigEndian(e, (uint)_files[i].Size);
            BinaryPrimitives.WriteUInt16BigEndian(e[4..], _files[i].Key);
            Encoding.ASCII.GetBytes(_files[i].Name, e[8..]);
        }
        return d;
    }

    public void Read(ulong offset, Span<byte> data)
    {
        if (offset == 0)
        {
            // The selector register is write-only.
            data.Clear();
            return;
        }
        lock (_gate)
        {
            _items.TryGetValue(_selector, out var item);
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = item is not null && _offset < item.Length ? item[_offset] : (byte)0;
                if (item is not null && _offset < item.Length) _offset++;
            }
        }
    }

    public void Write(ulong offset, ReadOnlySpan<byte> data)
    {
        if (offset != 0 || data.IsEmpty) return; // data writes: ignored, as QEMU has done since 2.4
        ushort sel = data.Length >= 2 ? BinaryPrimitives.ReadUInt16LittleEndian(data) : data[0];
        lock (_gate)
        {
            _selector = sel;
            _offset = 0;
        }
    }

    private static byte[] Le16(ushort v)
    {
        var b = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, v);
        return b;
    }

    private static byte[] Le32(uint v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return b;
    }
}
