using SharpVmm.Cli.Run;
using SharpVmm.Core;

namespace SharpVmm.Fuzz.Targets;

/// <summary><c>run --config FILE</c>: the JSON reader and its mapping of keys to the run command's options.</summary>
public static class ConfigFileTarget
{
    private static readonly System.CommandLine.Option[] s_options = [.. RunCommand.Create().Options];

    public static void Run(byte[] data)
    {
        string path = ScratchFile.Write("vm.json", data);
        try
        {
            ConfigFileReader.Read(path, s_options, _ => false);
        }
        catch (VmmException) { }
        catch (IOException) { }
    }
}
