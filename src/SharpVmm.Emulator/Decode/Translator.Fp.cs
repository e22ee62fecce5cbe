using Iced.Intel;

namespace SharpVmm.Emulator;

internal sealed unsafe partial class Translator
{
    private static bool TranslateSse(ref Op op, ref Instruction ins) => false;
    private static bool TranslateX87(ref Op op, ref Instruction ins) => false;
}
