using Iced.Intel;

namespace SharpVmm.Emulator.Jit;

/// <summary>
/// Lays out the instructions an Iced <see cref="Assembler"/> collected for one block and encodes them with Iced's
/// plain <see cref="Encoder"/>: Iced's BlockEncoder allocates several objects per instruction and was most of a
/// block's translation time. Branches to labels start short and become near only when their target is out of
/// reach (sizes only grow, so the layout settles in a few passes); RIP-relative operands that name a label (the
/// header's valid word and chain slots) are encoded against its final offset. The code starts at offset 0.
/// One instance per vCPU thread (not thread-safe).
/// </summary>
internal sealed class HostLinker
{
    private readonly Sink _scratch = new();
    private readonly Sink _out = new();
    private readonly Encoder _scratchEncoder;
    private readonly Encoder _outEncoder;
    private Instruction[] _ins = new Instruction[256];
    private int[] _start = new int[256], _size = new int[256], _offset = new int[257], _kind = new int[256], _target = new int[256];
    private int[] _labelIndex = new int[64];

    private const int Plain = 0, Branch = 1, ShortBranch = 2, RipRelative = 3;

    public HostLinker()
    {
        _scratchEncoder = Encoder.Create(64, _scratch);
        _outEncoder = Encoder.Create(64, _out);
    }

    /// <summary>Encodes <paramref name="list"/>; then <see cref="OffsetOf"/> gives label offsets.</summary>
    public byte[] Link(IReadOnlyList<Instruction> list)
    {
        int n = list.Count;
        if (_ins.Length < n) Grow(n);
        _scratch.Length = 0;
        Array.Fill(_labelIndex, -1);
        for (int i = 0; i < n; i++)
        {
            var ins = list[i];
            if (ins.IP != 0) LabelAt(ins.IP, i);
            _ins[i] = ins;
        }
        for (int i = 0; i < n; i++)
        {
            ref var ins = ref _ins[i];
            if (ins.OpCount > 0 && ins.Op0Kind == OpKind.NearBranch64)
            {
                _target[i] = IndexOfLabel(ins.NearBranch64);
                bool shortable = ins.IsJccShortOrNear || ins.IsJmpShortOrNear;
                if (shortable) ins.ToShortBranch();
                _kind[i] = shortable ? ShortBranch : Branch;
                ins.NearBranch64 = 0;
                _size[i] = (int)_scratchEncoder.Encode(ins, 0);
            }
            else if (ins.IsIPRelativeMemoryOperand)
            {
                _target[i] = IndexOfLabel(ins.MemoryDisplacement64);
                _kind[i] = RipRelative;
                ins.MemoryDisplacement64 = 0;
                _size[i] = (int)_scratchEncoder.Encode(ins, 0);
            }
            else
            {
                _kind[i] = Plain;
                _start[i] = _scratch.Length;
                _size[i] = (int)_scratchEncoder.Encode(ins, 0);
            }
        }
        // Widen short branches whose target is out of reach until nothing changes.
        bool changed = true;
        while (changed)
        {
            changed = false;
            int off = 0;
            for (int i = 0; i < n; i++) { _offset[i] = off; off += _size[i]; }
            _offset[n] = off;
            for (int i = 0; i < n; i++)
            {
                if (_kind[i] != ShortBranch) continue;
                long disp = (long)_offset[_target[i]] - (_offset[i] + _size[i]);
                if (disp is >= -128 and <= 127) continue;
                ref var ins = ref _ins[i];
                ins.ToNearBranch();
                _kind[i] = Branch;
                _size[i] = (int)_scratchEncoder.Encode(ins, 0);
                changed = true;
            }
        }
        _out.Length = 0;
        for (int i = 0; i < n; i++)
        {
            ref var ins = ref _ins[i];
            ulong rip = (ulong)_offset[i];
            switch (_kind[i])
            {
                case Plain:
                    _out.Append(_scratch.Bytes, _start[i], _size[i]);
                    continue;
                case RipRelative:
                    ins.MemoryDisplacement64 = (ulong)_offset[_target[i]];
                    break;
                default:
                    ins.NearBranch64 = (ulong)_offset[_target[i]];
                    break;
            }
            int len = (int)_outEncoder.Encode(ins, rip);
            if (len != _size[i]) throw new InvalidOperationException($"{ins.Code} changed size in the final pass");
        }
        return _out.Bytes.AsSpan(0, _out.Length).ToArray();
    }

    /// <summary>Offset of the instruction <paramref name="label"/> is attached to, after <see cref="Link"/>.</summary>
    public int OffsetOf(Label label) => _offset[IndexOfLabel(label.Id)];

    private void LabelAt(ulong id, int index)
    {
        if (id >= (ulong)_labelIndex.Length)
        {
            int old = _labelIndex.Length;
            Array.Resize(ref _labelIndex, (int)Math.Max(id + 1, (ulong)old * 2));
            Array.Fill(_labelIndex, -1, old, _labelIndex.Length - old);
        }
        _labelIndex[id] = index;
    }

    private int IndexOfLabel(ulong id)
        => id < (ulong)_labelIndex.Length && _labelIndex[id] >= 0 ? _labelIndex[id] : throw new InvalidOperationException($"label {id} is not placed");

    private void Grow(int n)
    {
        int m = Math.Max(n, _ins.Length * 2);
        _ins = new Instruction[m];
        _start = new int[m];
        _size = new int[m];
        _offset = new int[m + 1];
        _kind = new int[m];
        _target = new int[m];
    }

    private sealed class Sink : CodeWriter
    {
        public byte[] Bytes = new byte[8192];
        public int Length;

        public override void WriteByte(byte value)
        {
            if (Length == Bytes.Length) Array.Resize(ref Bytes, Bytes.Length * 2);
            Bytes[Length++] = value;
        }

        public void Append(byte[] src, int start, int count)
        {
            while (Length + count > Bytes.Length) Array.Resize(ref Bytes, Bytes.Length * 2);
            Array.Copy(src, start, Bytes, Length, count);
            Length += count;
        }
    }
}
