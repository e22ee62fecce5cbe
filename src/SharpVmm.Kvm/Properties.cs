using System.Runtime.CompilerServices;

// The layout test checks internal interop structs (sigaction) against the C headers.
[assembly: InternalsVisibleTo("SharpVmm.Kvm.Tests")]
