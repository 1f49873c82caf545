using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;

namespace VirtFs.DeviceBench;

/// <summary>
/// `VirtFs.DeviceBench chart --in ratios.tsv --out chart.png`: a horizontal bar chart of "label TAB ratio" lines
/// (tools/bench/report.sh), with the 1.0 line marked, written as an RGB PNG with nothing but
/// System.IO.Compression (no imaging dependency). Text uses a built-in 5x7 font (upper case, digits, a few signs).
/// </summary>
internal static class Chart
{
    private const int Width = 960, RowHeight = 16, Top = 30, LabelWidth = 400, BarLeft = LabelWidth + 10, BarRight = Width - 60;

    public static int Run(string[] args)
    {
        string? input = null, output = null;
        for (int i = 1; i + 1 < args.Length; i += 2)
        {
            if (args[i] == "--in") input = args[i + 1];
            else if (args[i] == "--out") output = args[i + 1];
        }
        if (input is null || output is null)
        {
            Console.Error.WriteLine("usage: VirtFs.DeviceBench chart --in ratios.tsv --out chart.png");
            return 2;
        }
        var rows = new List<(string Label, double Ratio)>();
        foreach (string line in File.ReadAllLines(input))
        {
            string[] parts = line.Split('\t');
            if (parts.Length == 2 && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double r))
            {
                rows.Add((parts[0], r));
            }
        }
        File.WriteAllBytes(output, Draw(rows, "VIRTFS RATIOS (MEDIANS; > 1: VIRTFS FASTER)"));
        return 0;
    }

    public static byte[] Draw(IReadOnlyList<(string Label, double Ratio)> rows, string title)
    {
        int height = Top + rows.Count * RowHeight + 20;
        var image = new Image(Width, height);
        image.Fill(0, 0, Width, height, 0xFFFFFF);
        image.Text(10, 10, title, 0x000000);
        double max = Math.Max(2, Math.Ceiling(rows.Count == 0 ? 1 : rows.Max(r => r.Ratio)));
        int X(double v) => BarLeft + (int)((BarRight - BarLeft) * Math.Min(v, max) / max);
        for (int i = 0; i < rows.Count; i++)
        {
            int y = Top + i * RowHeight;
            if (i % 2 == 0) image.Fill(0, y - 2, Width, RowHeight, 0xF2F2F2);
            image.Text(10, y + 2, rows[i].Label, 0x202020);
            double r = rows[i].Ratio;
            image.Fill(BarLeft, y + 1, X(r) - BarLeft, RowHeight - 5, r >= 1 ? 0x2E8B57 : 0xC0392B);
            image.Text(X(r) + 4, y + 2, r.ToString("F2", CultureInfo.InvariantCulture), 0x000000);
        }
        image.Fill(X(1), Top - 4, 1, rows.Count * RowHeight + 4, 0x000000);
        image.Text(X(1) - 8, height - 14, "1.0", 0x000000);
        image.Text(X(max) - 16, height - 14, max.ToString("F1", CultureInfo.InvariantCulture), 0x000000);
        return image.ToPng();
    }

    private sealed class Image(int width, int height)
    {
        private readonly byte[] _rgb = new byte[width * height * 3];

        public void Fill(int x, int y, int w, int h, int color)
        {
            for (int j = Math.Max(0, y); j < Math.Min(height, y + h); j++)
            for (int i = Math.Max(0, x); i < Math.Min(width, x + w); i++)
            {
                int p = (j * width + i) * 3;
                _rgb[p] = (byte)(color >> 16);
                _rgb[p + 1] = (byte)(color >> 8);
                _rgb[p + 2] = (byte)color;
            }
        }

        public void Text(int x, int y, string text, int color)
        {
            foreach (char c in text.ToUpperInvariant())
            {
                if (Font.TryGetValue(c, out byte[]? rows))
                {
                    for (int j = 0; j < 7; j++)
                    for (int i = 0; i < 5; i++)
                    {
                        if ((rows[j] & (0x10 >> i)) != 0) Fill(x + i, y + j, 1, 1, color);
                    }
                }
                x += 6;
            }
        }

        public byte[] ToPng()
        {
            var png = new MemoryStream();
            png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
            var header = new byte[13];
            BinaryPrimitives.WriteInt32BigEndian(header, width);
            BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
            header[8] = 8;  // bits per channel
            header[9] = 2;  // RGB
            Chunk(png, "IHDR", header);
            var raw = new MemoryStream();
            using (var z = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
            {
                for (int j = 0; j < height; j++)
                {
                    z.WriteByte(0); // filter: none
                    z.Write(_rgb, j * width * 3, width * 3);
                }
            }
            Chunk(png, "IDAT", raw.ToArray());
            Chunk(png, "IEND", []);
            return png.ToArray();
        }

        private static void Chunk(Stream s, string type, byte[] data)
        {
            Span<byte> word = stackalloc byte[4];
            BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
            s.Write(word);
            byte[] typed = [.. System.Text.Encoding.ASCII.GetBytes(type), .. data];
            s.Write(typed);
            BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(typed));
            s.Write(word);
        }

        /// <summary>The PNG/zlib CRC-32 (polynomial 0xEDB88320), bit by bit: a chart is a few kilobytes.</summary>
        private static uint Crc32(byte[] data)
        {
            uint crc = 0xFFFFFFFF;
            foreach (byte b in data)
            {
                crc ^= b;
                for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
            }
            return ~crc;
        }
    }

    /// <summary>5x7 glyphs, one byte per row, bit 4 = leftmost column.</summary>
    private static readonly Dictionary<char, byte[]> Font = new()
    {
        ['A'] = [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], ['B'] = [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        ['C'] = [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], ['D'] = [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        ['E'] = [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], ['F'] = [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        ['G'] = [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], ['H'] = [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        ['I'] = [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], ['J'] = [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        ['K'] = [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], ['L'] = [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        ['M'] = [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], ['N'] = [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        ['O'] = [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], ['P'] = [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        ['Q'] = [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], ['R'] = [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        ['S'] = [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], ['T'] = [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        ['U'] = [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], ['V'] = [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        ['W'] = [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], ['X'] = [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        ['Y'] = [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04], ['Z'] = [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        ['0'] = [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], ['1'] = [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        ['2'] = [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], ['3'] = [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        ['4'] = [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], ['5'] = [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        ['6'] = [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], ['7'] = [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        ['8'] = [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], ['9'] = [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ['-'] = [0, 0, 0, 0x1F, 0, 0, 0], ['.'] = [0, 0, 0, 0, 0, 0x0C, 0x0C], ['/'] = [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        [':'] = [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0], ['('] = [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        [')'] = [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08], ['>'] = [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
        [';'] = [0, 0x0C, 0x0C, 0, 0x0C, 0x04, 0x08],
    };
}
