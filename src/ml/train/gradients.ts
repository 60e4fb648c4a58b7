// tfjs-core's Node bundle registers no gradient functions; tfjs-layers' bundle registers all of them
// as an import side effect. Import this module before computing any gradient.
import '@tensorflow/tfjs-layers';
