/*
 * Reads an rdf.yaml the way deepImageJ 3.1 does through JDLL 0.6.1 (Maven io.bioimage:dl-modelrunner
 * 0.6.1, the version deepImageJ 3.1's pom.xml pins) and applies every cast and dereference that
 * JDLL's reader applies to it, in JDLL's order, without adding any type check JDLL does not have:
 * a value of the wrong type throws ClassCastException here exactly where it throws in JDLL.
 *
 * Mirrored source (bioimage-io/JDLL, tag dl-modelrunner-0.6.1), package
 * io.bioimage.modelrunner.bioimageio.description unless named otherwise:
 *   utils/YAMLUtils.load                      new Yaml().load(stream) into Map<String, Object>
 *   ModelDescriptorFactory.fromMap            format_version must be a String starting with "0.5"
 *   ModelDescriptorV05(Map)                   buildModelDescription(), then the model id
 *   ModelDescriptor.buildModelDescription     top-level fields in sorted key order, cite, tensors,
 *                                             weights, config, attachments, halo, addBioEngine
 *   ModelDescriptor.buildAuthors / buildCiteElements / castListStrings
 *   TensorSpecV05, AxesV05, AxisV05, AxisSize
 *   ModelDescriptorV05.calculateTotalInputHalo / buildAttachments / findID / addBioEngine
 *   weights/ModelWeight.build, TorchscriptWeights, PytorchWeights, OnnxWeights, ModelDependencies
 *   ExecutionConfig.getDeepImageJ, deepimagej/DeepImageJExecutionConfig.build (read when tiling:
 *                                             tiling/TileCalculator, tiling/TileMaker)
 *   gui/ModelSelectionPanel, download/DownloadModel: the covers are read as Strings
 *
 * Usage: java -cp snakeyaml.jar:. JdllCast rdf.yaml
 * Exit 0: JDLL reads the file. Exit 1: one line
 *   deepImageJ/JDLL 0.6.1: field <path> is <actual type>, JDLL casts it to <expected>
 * (or "... is missing, JDLL dereferences it" for a NullPointerException), the first failure JDLL
 * meets. Exit 2: the file cannot be read or is not 0.5. unifmir.export.consumers.jdll_field_problems
 * is the same check in Python; tests/consumers checks that both agree.
 */

import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.yaml.snakeyaml.Yaml;

public final class JdllCast {

    // what is being cast right now; reported when the cast throws
    private static String field = "";
    private static Object value;
    private static String expected = "";

    /** Records the value about to be cast (or dereferenced) and returns it unchanged. */
    private static Object at(String path, Object v, String target) {
        field = path;
        value = v;
        expected = target;
        return v;
    }

    static String describe(Object v) {
        if (v == null) return "missing (null)";
        String cls = v.getClass().getName();
        if (v instanceof Map) return "a mapping (" + cls + ")";
        if (v instanceof List) return "a list (" + cls + ")";
        if (v instanceof String) return "a string (" + cls + ")";
        if (v instanceof Boolean) return "a boolean (" + cls + ")";
        if (v instanceof Integer || v instanceof Long || v instanceof BigInteger) return "an integer (" + cls + ")";
        if (v instanceof Double) return "a float (" + cls + ")";
        if (v instanceof Date) return "a timestamp (" + cls + ")";
        return "a " + cls;
    }

    public static void main(String[] args) {
        Map<String, Object> yaml;
        try (InputStream in = new FileInputStream(args[0])) {
            // YAMLUtils.load: `Map<String, Object> obj = yaml.load(targetStream);`
            Object doc = new Yaml().load(in);
            at("(document)", doc, "Map<String, Object>");
            @SuppressWarnings("unchecked")
            Map<String, Object> m = (Map<String, Object>) doc;
            yaml = m;
        } catch (ClassCastException e) {
            fail();
            return;
        } catch (Exception e) {
            System.out.println("deepImageJ/JDLL 0.6.1: cannot read " + args[0] + ": " + e);
            System.exit(2);
            return;
        }
        try {
            // ModelDescriptorFactory.readFromLocalFile
            yaml.put("modelPath", new File(args[0]).getAbsoluteFile().getParentFile().getAbsolutePath());
            Object fv = yaml.get("format_version");
            if (!(fv instanceof String) || !((String) fv).startsWith("0.5")) {
                System.out.println("deepImageJ/JDLL 0.6.1: field format_version is " + describe(fv)
                        + "; this check mirrors JDLL's 0.5 reader (ModelDescriptorV05) only");
                System.exit(2);
            }
            readV05(yaml);
        } catch (ClassCastException | NullPointerException e) {
            fail();
        }
        System.out.println("deepImageJ/JDLL 0.6.1: rdf read without a cast error");
    }

    private static void fail() {
        if (value == null) {
            System.out.println("deepImageJ/JDLL 0.6.1: field " + field + " is missing, JDLL dereferences it"
                    + " (NullPointerException; JDLL needs " + expected + ")");
        } else {
            System.out.println("deepImageJ/JDLL 0.6.1: field " + field + " is " + describe(value)
                    + ", JDLL casts it to " + expected);
        }
        System.exit(1);
    }

    // ---------------------------------------------------------------- ModelDescriptorV05(Map)
    @SuppressWarnings("unchecked")
    private static void readV05(Map<String, Object> y) {
        String modelID = null;
        String name = null;
        // ModelDescriptor.buildModelDescription: fields in sorted key order
        Set<String> keys = y.keySet();
        String[] sorted = keys.toArray(new String[0]);
        Arrays.sort(sorted);
        for (String f : sorted) {
            Object v = y.get(f);
            switch (f) {
                case "format_version":
                case "description":
                case "license":
                case "documentation":
                case "git_repo":
                case "type":
                case "modelPath":
                    String s = (String) at(f, v, "String");
                    break;
                case "name":
                    name = (String) at(f, v, "String");
                    break;
                case "id":
                    modelID = (String) at(f, v, "String");
                    break;
                case "timestamp":
                    at(f, v, "an object (toString())");
                    v.toString();
                    break;
                case "authors":
                case "maintainers":
                case "packaged_by":
                    buildAuthors(f, v);
                    break;
                case "tags":
                case "links":
                case "covers":
                    // castListStrings: `(List<String>) list` is unchecked; elements are cast where read
                    break;
                default:
                    break;
            }
        }
        buildCiteElements(y.get("cite"));
        List<Object> inputs = buildTensors("inputs", y.get("inputs"));
        List<Object> outputs = buildTensors("outputs", y.get("outputs"));
        // ModelDescriptor.buildWeights: ModelWeight.build((Map<String, Object>) yaml.get("weights"))
        Map<String, Object> weights = (Map<String, Object>) at("weights", y.get("weights"), "Map<String, Object>");
        at("weights", weights, "Map<String, Object>");
        buildWeights(weights);
        // ModelDescriptor.buildConfig: ExecutionConfig.build((Map<String, Object>) yaml.get("config"))
        Map<String, Object> config = (Map<String, Object>) at("config", y.get("config"), "Map<String, Object>");
        buildAttachments(y.get("attachments"));
        calculateTotalInputHalo(inputs, outputs);
        // addBioEngine(): `getName().equals("cellpose-python")`
        at("name", name, "String");
        name.equals("cellpose-python");
        // ModelDescriptorV05: `if (modelID == null) modelID = findID();` then `modelID.length()`
        if (modelID == null) {
            modelID = findID(y, config);
            at("id (or config.bioimageio.nickname)", modelID, "String");
            modelID.length();
        }
        // ExecutionConfig.getDeepImageJ (read by TileCalculator / TileMaker: isTilingAllowed, isPyramidal)
        if (config != null) {
            Map<String, Object> dij = (Map<String, Object>) at("config.deepimagej", config.get("deepimagej"),
                    "Map<String, Object>");
            if (dij != null) buildDeepImageJ(dij);
        }
        // gui/ModelSelectionPanel: `new File(mm.getCovers().get(0))`; download/DownloadModel:
        // `for (String ss : descriptor.getCovers())`
        Object covers = y.get("covers");
        if (covers instanceof List) {
            List<String> cv = (List<String>) covers;
            for (int i = 0; i < cv.size(); i++) {
                at("covers[" + i + "]", ((List<Object>) covers).get(i), "String");
                String c = cv.get(i);
            }
        }
    }

    // ModelDescriptor.buildAuthors: non-list -> empty; non-map entries skipped;
    // `Map<String, String> dict`, then Author.build(dict.get("affiliation"), ...) (String parameters)
    @SuppressWarnings("unchecked")
    private static void buildAuthors(String f, Object object) {
        if (object == null || !(object instanceof List)) return;
        List<Object> list = (List<Object>) object;
        for (int i = 0; i < list.size(); i++) {
            Object elem = list.get(i);
            if (!(elem instanceof Map<?, ?>)) continue;
            Map<String, Object> dict = (Map<String, Object>) elem;
            for (String k : new String[] {"affiliation", "email", "github_user", "name", "orcid"}) {
                String s = (String) at(f + "[" + i + "]." + k, dict.get(k), "String");
            }
        }
    }

    // ModelDescriptor.buildCiteElements: Cite.build((String) text, (String) doi, (String) url)
    @SuppressWarnings("unchecked")
    private static void buildCiteElements(Object cite) {
        if (cite == null || !(cite instanceof List<?>)) return;
        List<Object> list = (List<Object>) cite;
        for (int i = 0; i < list.size(); i++) {
            Object elem = list.get(i);
            if (!(elem instanceof Map<?, ?>)) continue;
            Map<String, Object> dict = (Map<String, Object>) elem;
            for (String k : new String[] {"text", "doi", "url"}) {
                String s = (String) at("cite[" + i + "]." + k, dict.get(k), "String");
            }
        }
    }

    // ModelDescriptorV05.buildInputTensors / buildOutputTensors: non-list -> null; non-map skipped
    @SuppressWarnings("unchecked")
    private static List<Object> buildTensors(String f, Object object) {
        if (!(object instanceof List<?>)) return null;
        List<Object> list = (List<Object>) object;
        List<Object> tensors = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            Object elem = list.get(i);
            if (!(elem instanceof Map<?, ?>)) continue;
            tensorSpecV05(f + "[" + i + "]", (Map<String, Object>) elem);
            tensors.add(elem);
        }
        return tensors;
    }

    // TensorSpecV05(Map, boolean)
    @SuppressWarnings("unchecked")
    private static void tensorSpecV05(String p, Map<String, Object> t) {
        String id;
        if (t.get("id") == null) id = (String) at(p + ".name", t.get("name"), "String");
        else id = (String) at(p + ".id", t.get("id"), "String");
        if (t.get("axes") == null || !(t.get("axes") instanceof List)) {
            System.out.println("deepImageJ/JDLL 0.6.1: field " + p + ".axes is " + describe(t.get("axes"))
                    + ", JDLL requires a list of axes (IllegalArgumentException)");
            System.exit(1);
        }
        List<Object> axes = (List<Object>) t.get("axes");
        // AxesV05(List<Object>)
        for (int i = 0; i < axes.size(); i++) {
            Object ax = axes.get(i);
            if (!(ax instanceof Map)) {
                System.out.println("deepImageJ/JDLL 0.6.1: field " + p + ".axes[" + i + "] is " + describe(ax)
                        + ", JDLL requires a mapping (IllegalArgumentException)");
                System.exit(1);
            }
            axisV05(p + ".axes[" + i + "]", (Map<String, Object>) ax);
        }
        String d = (String) at(p + ".description", t.get("description"), "String");
        for (String kind : new String[] {"preprocessing", "postprocessing"}) {
            List<?> procs = (List<?>) at(p + "." + kind, t.get(kind), "List");
            if (procs == null) continue;
            for (int i = 0; i < procs.size(); i++) {
                // `((Map<String, Object>) elem).get("id")`, then TransformSpec.build((Map<String, Object>) elem)
                Map<String, Object> elem = (Map<String, Object>) at(p + "." + kind + "[" + i + "]", procs.get(i),
                        "Map<String, Object>");
                at(p + "." + kind + "[" + i + "]", elem, "Map<String, Object>");
                elem.get("id");
            }
        }
        // sample_tensor / test_tensor / data: every cast guarded by instanceof in JDLL
    }

    // AxisV05(Map) and AxisSize(Object)
    @SuppressWarnings("unchecked")
    private static void axisV05(String p, Map<String, Object> map) {
        String id = (String) at(p + ".id", map.get("id"), "String");
        String type = (String) at(p + ".type", map.get("type"), "String");
        List<String> channelNames = (List<String>) at(p + ".channel_names", map.get("channel_names"), "List<String>");
        if (map.get("description") != null) {
            String d = (String) at(p + ".description", map.get("description"), "String");
        }
        if (map.get("concatenable") != null) {
            boolean c = (boolean) at(p + ".concatenable", map.get("concatenable"), "boolean");
        }
        if (map.get("scale") != null) {
            double s = ((Number) at(p + ".scale", map.get("scale"), "Number")).doubleValue();
        }
        if (map.get("halo") != null) {
            int h = ((Number) at(p + ".halo", map.get("halo"), "Number")).intValue();
        }
        // AxisSize: `if (object instanceof Number) min = (int) object;` (Integer), maps fully guarded
        Object size = map.get("size");
        if (size instanceof Number) {
            int min = (int) at(p + ".size", size, "int (Integer)");
        }
        if (id == null && type == null) {
            System.out.println("deepImageJ/JDLL 0.6.1: field " + p + " has neither id nor type"
                    + " (IllegalArgumentException)");
            System.exit(1);
        }
        at(p + ".type", type, "String");
        if (id == null && type.equals("space")) {
            System.out.println("deepImageJ/JDLL 0.6.1: field " + p + ".id is missing on a space axis"
                    + " (IllegalArgumentException)");
            System.exit(1);
        } else if ((id == null || id != "b") && type.equals("batch")) {
            return;
        } else if ((id != null && id.equals("channel")) || type.equals("channel")) {
            // `this.size.min = channelNames.size();`
            at(p + ".channel_names", channelNames, "List<String>");
            channelNames.size();
        }
    }

    // ModelDescriptorV05.calculateTotalInputHalo: each output halo is moved onto the referenced input
    // axis (`(halo + offset) / scale`); JDLL leaves the whole method at the first halo axis without a
    // reference, and at the first one whose input axis is absent or already has a larger halo
    @SuppressWarnings("unchecked")
    private static void calculateTotalInputHalo(List<Object> inputs, List<Object> outputs) {
        java.util.HashMap<String, Integer> inputHalo = new java.util.HashMap<>();
        at("outputs", outputs, "a list of tensors");
        for (int o = 0; o < outputs.size(); o++) {
            List<Object> axes = (List<Object>) ((Map<String, Object>) outputs.get(o)).get("axes");
            for (int a = 0; a < axes.size(); a++) {
                Map<String, Object> ax = (Map<String, Object>) axes.get(a);
                int halo = ax.get("halo") == null ? 0 : ((Number) ax.get("halo")).intValue();
                if (halo == 0) continue;
                Object size = ax.get("size");
                Map<String, Object> sm = size instanceof Map ? (Map<String, Object>) size : null;
                String ref = sm != null && sm.get("tensor_id") instanceof String ? (String) sm.get("tensor_id") : null;
                String refAxis = sm != null && sm.get("axis_id") instanceof String ? (String) sm.get("axis_id") : null;
                if (ref == null) {
                    at("inputs", inputs, "a list of tensors");
                    inputs.size();  // `this.input_tensors.stream()`
                    return;
                }
                double scale = ax.get("scale") == null ? 1.0 : ((Number) ax.get("scale")).doubleValue();
                double offset = sm.get("offset") instanceof Number ? ((Number) sm.get("offset")).doubleValue() : 0;
                double nHalo = (halo + offset) / scale;
                // `(AxisV05) this.findInputTensor(ref).getAxesInfo().getAxis(ax.getReferenceAxis())`
                Map<String, Object> found = null;
                for (Object in : inputs == null ? new ArrayList<Object>() : inputs) {
                    Map<String, Object> im = (Map<String, Object>) in;
                    Object iid = im.get("id") == null ? im.get("name") : im.get("id");
                    if (ref.equals(iid)) {
                        found = im;
                        break;
                    }
                }
                if (found == null) {  // JDLL: `findInputTensor(ref)` is null -> NullPointerException
                    System.out.println("deepImageJ/JDLL 0.6.1: field outputs[" + o + "].axes[" + a + "].size.tensor_id"
                            + " names no input tensor (" + ref + "), JDLL dereferences it (NullPointerException)");
                    System.exit(1);
                }
                String key = ref + "/" + refAxis;
                boolean hasAxis = false;
                for (Object inAx : (List<Object>) found.get("axes")) {
                    if (abbreviation((Map<String, Object>) inAx).equals(refAxis)) {
                        hasAxis = true;
                        if (!inputHalo.containsKey(key)) {
                            Object h = ((Map<String, Object>) inAx).get("halo");
                            inputHalo.put(key, h == null ? 0 : ((Number) h).intValue());
                        }
                        break;
                    }
                }
                if (!hasAxis || inputHalo.get(key) > nHalo) return;
                inputHalo.put(key, (int) nHalo);
            }
        }
    }

    // AxisV05's abbreviation: "b" for batch, "c" for channel, else the id
    private static String abbreviation(Map<String, Object> ax) {
        Object id = ax.get("id");
        Object type = ax.get("type");
        if ("batch".equals(type)) return "b";
        if ("channel".equals(id) || "channel".equals(type)) return "c";
        return String.valueOf(id);
    }

    private static final List<String> WITH_DEPENDENCIES = Arrays.asList("keras_hdf5", "pytorch_state_dict",
            "tensorflow_saved_model_bundle", "tensorflow_js", "torchscript", "pytorch_script");

    // ModelWeight.build: `(Map<String, Object>) yamlFieldElements.get(ww)` for every entry
    @SuppressWarnings("unchecked")
    private static void buildWeights(Map<String, Object> w) {
        for (String ww : w.keySet()) {
            Map<String, Object> entry = (Map<String, Object>) at("weights." + ww, w.get(ww), "Map<String, Object>");
            if (entry == null) continue;
            // Torchscript/Pytorch/Onnx/...Weights: every field guarded by instanceof, except
            // ModelDependencies(Map): `this.envFile = (String) map.get("source")`
            // (every reader but OnnxWeights handles "dependencies")
            boolean hasDeps = WITH_DEPENDENCIES.contains(ww);
            Object deps = entry.get("dependencies");
            if (hasDeps && deps instanceof Map) {
                String src = (String) at("weights." + ww + ".dependencies.source", ((Map<String, Object>) deps).get("source"),
                        "String");
            }
        }
    }

    // ModelDescriptorV05.buildAttachments: `(String) ((Map) ll).get("source")`
    @SuppressWarnings("unchecked")
    private static void buildAttachments(Object att) {
        if (att == null || !(att instanceof List)) return;
        List<Object> list = (List<Object>) att;
        for (int i = 0; i < list.size(); i++) {
            Object ll = list.get(i);
            if (ll instanceof Map && ((Map<String, Object>) ll).keySet().contains("source")) {
                String s = (String) at("attachments[" + i + "].source", ((Map<String, Object>) ll).get("source"), "String");
            }
        }
    }

    // ModelDescriptorV05.findID
    @SuppressWarnings("unchecked")
    private static String findID(Map<String, Object> y, Map<String, Object> config) {
        if (config == null) return "friend-0"; // ExecutionConfig.build invents a nickname
        if (config.get("bioimageio") != null && config.get("bioimageio") instanceof Map) {
            Map<String, Object> b = (Map<String, Object>) config.get("bioimageio");
            if (b.get("nickname") != null) return (String) at("config.bioimageio.nickname", b.get("nickname"), "String");
        }
        return (String) at("id", y.get("id"), "String");
    }

    // DeepImageJExecutionConfig.build
    @SuppressWarnings("unchecked")
    private static void buildDeepImageJ(Map<String, Object> m) {
        if (m.containsKey("pyramidal_model")) {
            boolean b = (boolean) at("config.deepimagej.pyramidal_model", m.get("pyramidal_model"), "boolean");
        }
        if (m.containsKey("allow_tiling")) {
            boolean b = (boolean) at("config.deepimagej.allow_tiling", m.get("allow_tiling"), "boolean");
        }
        if (m.containsKey("test_information")) {
            Map<String, Object> t = (Map<String, Object>) at("config.deepimagej.test_information",
                    m.get("test_information"), "Map<String, Object>");
        }
        Map<String, Object> pred = (Map<String, Object>) at("config.deepimagej.prediction", m.get("prediction"),
                "Map<String, Object>");
    }
}
