using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("SharpVmm.Emulator.Tests")]
[assembly: InternalsVisibleTo("SharpVmm.Bench")]
