/** The files a Moonshine model folder holds (checked by the engine choice without loading onnxruntime). */
export const MOONSHINE_FILES = ["encoder_model.onnx", "decoder_model_merged.onnx"] as const;
