export { VerifyForm, type TestDataset } from "./components/VerifyForm";
export { VerifyResults } from "./components/VerifyResults";
