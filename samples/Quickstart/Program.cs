using GigaPath.Models.Tile;
using GigaPath.Weights;

// args[0]: a tile-model folder (config.json + model.safetensors); the rest: tile images (PNG/JPEG/TIFF).
using var encoder = TileEncoder.Load(args[0]);
using var result = encoder.EmbedImages(args[1..]);   // preprocessing from the model's config; float32 [N, D] on CPU
SafeTensorsWriter.Write("embeddings.safetensors",
    new Dictionary<string, TorchSharp.torch.Tensor> { ["embeddings"] = result.Embeddings });
Console.WriteLine($"embedded {result.Count} images: [{string.Join(", ", result.Embeddings.shape)}]");
