using Iced.Intel;

namespace SharpVmm.Emulator;

/// <summary>
/// Iced's enum names, each computed once: the decoder tells some forms apart by name (Setcc/Cmov mnemonics, the
/// size suffix of LEAVE/ENTER, x87 mnemonics), and Enum.ToString goes through reflection metadata on every call
/// under native AOT (it showed at 2% of a Linux boot).
/// </summary>
internal static class IcedNames
{
    private static readonly string?[] Codes = new string?[Enum.GetValues<Code>().Length];
    private static readonly string?[] Mnemonics = new string?[Enum.GetValues<Mnemonic>().Length];

    public static string Of(Code c) => Codes[(int)c] ??= c.ToString();

    public static string Of(Mnemonic m) => Mnemonics[(int)m] ??= m.ToString();
}
