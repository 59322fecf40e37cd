// The parts of @gomomento/sdk-web that tvm.js uses, as an ES module: the
// entry point of `npm run bundle`, which writes dist/sdk-web.js. Pages that
// bundle the SDK themselves pass their own import instead.
export {CredentialProvider, TopicClient, TopicConfigurations} from '@gomomento/sdk-web';
