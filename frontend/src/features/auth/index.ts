export { LoginPage } from "./components/LoginPage";
export { UserMenu } from "./components/UserMenu";
export { TokensPage } from "./components/TokensPage";
