using System.Text;
using System.Text.Json;

namespace SharpVmm.Cli.Img;

/// <summary>JSON laid out as qemu-img prints it (4-space indent).</summary>
internal static class Json
{
    public static string Write(Action<Utf8JsonWriter> body)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, IndentSize = 4 }))
            body(w);
        return Encoding.UTF8.GetString(ms.ToArray());
    }
}
