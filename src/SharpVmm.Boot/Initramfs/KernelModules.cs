namespace SharpVmm.Boot.Initramfs;

/// <summary>
/// Finds kernel modules in a lib/modules/&lt;version&gt; tree and orders them for loading. Debian ships no
/// modules.dep, so dependencies come from each module's own .modinfo depends= string.
/// </summary>
public static class KernelModules
{
    /// <summary>
    /// Returns the requested modules and everything they depend on, each once, dependencies before the modules
    /// that need them (requested order kept where the dependencies allow). '-' and '_' are the same in names
    /// ("virtio-rng" is virtio_rng). Modules listed in modules.builtin are built into the kernel and skipped.
    /// </summary>
    public static IReadOnlyList<KernelModule> Resolve(string modulesDir, IEnumerable<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var index = Index(modulesDir);
        var builtin = ReadBuiltin(modulesDir);
        var order = new List<KernelModule>();
        var done = new Dictionary<string, KernelModule>(StringComparer.Ordinal);
        var visiting = new List<string>();

        foreach (var requested in names)
        {
            if (string.IsNullOrWhiteSpace(requested))
                continue;
            string name = Canonical(requested.Trim());
            if (name.EndsWith(".ko", StringComparison.Ordinal))
                name = name[..^3];
            Visit(name, requestedBy: null);
        }
        return order;

        void Visit(string name, string? requestedBy)
        {
            if (done.ContainsKey(name))
                return;
            int cycleStart = visiting.IndexOf(name);
            if (cycleStart >= 0)
                throw new InitramfsException($"kernel modules depend on each other in a cycle: {string.Join(" -> ", visiting.Skip(cycleStart).Append(name))}");
            if (!index.TryGetValue(name, out string? path))
            {
                if (builtin.Contains(name))
                    return;
                string who = requestedBy is null ? "requested" : $"needed by '{requestedBy}'";
                throw new InitramfsException($"kernel module '{name}' ({who}) is not in {modulesDir}: check the name (see the .ko files under kernel/) or that the modules tree matches the kernel");
            }

            var info = ElfModInfoReader.Read(path);
            string? ownName = info.Name is null ? null : Canonical(info.Name);
            if (ownName is not null && ownName != name)
                throw new InitramfsException($"kernel module file '{path}' calls itself '{ownName}', not '{name}'; the modules tree is inconsistent");

            visiting.Add(name);
            var depends = info.Depends.Select(Canonical).ToArray();
            foreach (var dep in depends)
                Visit(dep, name);
            visiting.RemoveAt(visiting.Count - 1);

            var module = new KernelModule(name, Relative(modulesDir, path), path, depends);
            done.Add(name, module);
            order.Add(module);
        }
    }

    /// <summary>
    /// A modules.dep for exactly these modules ("path: dep-path dep-path ..." with paths relative to the modules
    /// dir, all transitive dependencies, nearest first), so busybox modprobe can load them.
    /// </summary>
    public static string ModulesDep(IReadOnlyList<KernelModule> modules)
    {
        ArgumentNullException.ThrowIfNull(modules);
        var byName = modules.ToDictionary(m => m.Name, StringComparer.Ordinal);
        var sb = new System.Text.StringBuilder();
        foreach (var m in modules)
        {
            sb.Append(m.RelativePath).Append(':');
            foreach (var dep in TransitiveDepends(m, byName))
                sb.Append(' ').Append(dep.RelativePath);
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Module names are compared with '-' read as '_', as the kernel does.</summary>
    public static string Canonical(string name) => name.Replace('-', '_');

    private static List<KernelModule> TransitiveDepends(KernelModule m, Dictionary<string, KernelModule> byName)
    {
        // Breadth-first from the module: modprobe loads this list from the end, so the deepest come last.
        var result = new List<KernelModule>();
        var seen = new HashSet<string>(StringComparer.Ordinal) { m.Name };
        var queue = new Queue<KernelModule>();
        queue.Enqueue(m);
        while (queue.Count > 0)
        {
            foreach (var depName in queue.Dequeue().Depends)
            {
                if (!seen.Add(depName))
                    continue;
                if (!byName.TryGetValue(depName, out var dep))
                    throw new InitramfsException($"modules.dep: '{m.Name}' needs '{depName}', which is not in the module list; build the list with {nameof(KernelModules)}.{nameof(Resolve)}");
                result.Add(dep);
                queue.Enqueue(dep);
            }
        }
        // A dependency must come after everything that needs it, whatever the path lengths.
        return TopologicalTail(result, byName);
    }

    private static List<KernelModule> TopologicalTail(List<KernelModule> deps, Dictionary<string, KernelModule> byName)
    {
        var set = deps.Select(d => d.Name).ToHashSet(StringComparer.Ordinal);
        var loadOrder = new List<KernelModule>();
        var placed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var d in deps)
            Place(d);
        loadOrder.Reverse();
        return loadOrder;

        void Place(KernelModule d)
        {
            if (!placed.Add(d.Name))
                return;
            foreach (var n in d.Depends)
            {
                if (set.Contains(n))
                    Place(byName[n]);
            }
            loadOrder.Add(d);
        }
    }

    private static Dictionary<string, string> Index(string modulesDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(modulesDir);
        if (!Directory.Exists(modulesDir))
            throw new InitramfsException($"kernel modules directory '{modulesDir}' does not exist; run guest/fetch.sh to fetch the guest kernel");
        var index = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(modulesDir, "*.ko", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string name = Canonical(Path.GetFileNameWithoutExtension(file));
            if (!index.TryAdd(name, file))
                throw new InitramfsException($"kernel module '{name}' exists twice: '{index[name]}' and '{file}'");
        }
        return index;
    }

    private static HashSet<string> ReadBuiltin(string modulesDir)
    {
        var builtin = new HashSet<string>(StringComparer.Ordinal);
        string file = Path.Combine(modulesDir, "modules.builtin");
        if (File.Exists(file))
        {
            foreach (var line in File.ReadLines(file))
            {
                string l = line.Trim();
                if (l.Length > 0)
                    builtin.Add(Canonical(Path.GetFileNameWithoutExtension(l)));
            }
        }
        return builtin;
    }

    private static string Relative(string modulesDir, string path) =>
        Path.GetRelativePath(modulesDir, path).Replace(Path.DirectorySeparatorChar, '/');
}
