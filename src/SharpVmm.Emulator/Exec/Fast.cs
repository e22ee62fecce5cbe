namespace SharpVmm.Emulator;

/// <summary>Size-specialized forms of the commonest instructions (64- and 32-bit registers): no size switches.</summary>
internal static unsafe partial class Handlers
{
    public static void UnR64<T>(X86Cpu c, ref Op op) where T : struct, IUnOp => c.R[op.Reg] = T.Do(c, c.R[op.Reg], 8);
    public static void UnR32<T>(X86Cpu c, ref Op op) where T : struct, IUnOp => c.R[op.Reg] = (uint)T.Do(c, (uint)c.R[op.Reg], 4);

    public static void Lea64(X86Cpu c, ref Op op) => c.R[op.Reg] = c.EaOffset(ref op);
    public static void Lea32(X86Cpu c, ref Op op) => c.R[op.Reg] = (uint)c.EaOffset(ref op);

    /// <summary>SHL/SHR/SAR by an immediate on a 64-bit register (op.Cc 4/5/7, count already masked and non-zero).</summary>
    public static void ShiftImm64(X86Cpu c, ref Op op)
    {
        ulong a = c.R[op.Reg];
        int n = (int)op.Imm;
        ulong r;
        int kind;
        switch (op.Cc)
        {
            case 5: r = a >> n; kind = X86Cpu.FkShr; break;
            case 7: r = (ulong)((long)a >> n); kind = X86Cpu.FkSar; break;
            default: r = a << n; kind = X86Cpu.FkShl; break;
        }
        c.R[op.Reg] = r;
        c.SetLazy(kind, a, (ulong)n, r, 8);
    }

    public static void ShiftImm32(X86Cpu c, ref Op op)
    {
        uint a = (uint)c.R[op.Reg];
        int n = (int)op.Imm;
        uint r;
        int kind;
        switch (op.Cc)
        {
            case 5: r = a >> n; kind = X86Cpu.FkShr; break;
            case 7: r = (uint)((int)a >> n); kind = X86Cpu.FkSar; break;
            default: r = a << n; kind = X86Cpu.FkShl; break;
        }
        c.R[op.Reg] = r;
        c.SetLazy(kind, a, (ulong)n, r, 4);
    }
}
